"""`gossamer demo`: the walkthrough scenarios, end to end, on this machine."""
