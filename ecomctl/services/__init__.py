"""One module per service: business logic and business spans; adapters are passed in."""
