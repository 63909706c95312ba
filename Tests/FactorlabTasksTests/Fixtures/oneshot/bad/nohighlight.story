Article text only, no highlights.
