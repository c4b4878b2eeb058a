"""Reference registries shared by every node: calendars, epi weeks and notifiable diseases."""
