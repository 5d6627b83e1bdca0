"""How the flows are served and scheduled."""
