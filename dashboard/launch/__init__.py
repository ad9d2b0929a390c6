"""The Launch page's forms (a run, a comparison, each study, a sweep) and its jobs panel."""
