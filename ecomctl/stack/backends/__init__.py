"""One module per local backend."""
