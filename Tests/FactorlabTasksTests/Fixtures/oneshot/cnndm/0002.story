LONDON, England (Reuters) -- A new bridge opened across the Thames, costing 40 million pounds.

@highlight

A new bridge opened across the Thames

@highlight

It cost 40 million pounds
