"""Pictures and pages made from a run's numbers, knowing nothing of run directories.

``figures`` makes every figure and saves every PNG (matplotlib's ``Figure``, never pyplot);
``curves`` (training history), ``overlay`` (compare), ``sweep`` (lr-find), ``confusion`` and
``gallery`` (mistakes, first-layer filters) draw them; ``metrics`` scores predictions; ``html``
renders report.html from ``templates/report.html.j2``. Nothing is imported here.
"""
