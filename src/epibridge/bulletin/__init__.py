"""The hub's weekly regional bulletin, as one offline HTML file or an A4 PDF.

``content.gather`` reads what the bulletin says from the hub's store as of a time;
``html.render_html`` and ``pdf.render_pdf`` lay it out (the same words, ``text.py``, and
the same SVG map and curves, ``svg.py``); ``release.publish`` writes the file and logs
its SHA-256 as a release leaf of the transparency log. ``epibridge bulletin`` is the
command (``cli_bulletin.py``); docs/bulletin.md says what is in it.
"""
