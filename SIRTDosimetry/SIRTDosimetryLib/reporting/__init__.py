"""The per-patient report: ``report.html`` (self-contained) and ``report.pdf`` with tables and pictures.

``content`` builds the tables from the files of ``sirt dose`` / ``sirt dvh`` / ``sirt plan``,
``figures`` draws the dose on the anatomy, ``render`` writes HTML and PDF, ``report`` puts them together.
"""
