"""Pure tabular stages: Ibis expressions in, Ibis expressions out. No I/O, no clock."""
