"""The proof-of-concept study of factory CSVs and its self-contained HTML report.

:func:`run_study` analyses a file or folder as a pipeline spec describes it;
:func:`render_html` turns the study into one offline HTML file.
"""

from tsforge.report.html import render_html, write_html
from tsforge.report.study import SensorStudy, Study, run_study

__all__ = ["SensorStudy", "Study", "render_html", "run_study", "write_html"]
