"""Pictures and pages made from a run: loss curves, confusion matrices, reports."""
