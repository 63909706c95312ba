(CNN) -- The river flooded the town on Monday, officials said.

Hundreds of residents were moved to the school gym, where volunteers served soup.

@highlight

The river flooded the town on Monday

@highlight

Hundreds of residents were moved to a school gym
