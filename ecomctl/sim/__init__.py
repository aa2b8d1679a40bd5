"""Virtual shoppers, journeys, fault injection and the checkout simulation's result."""
