"""The Weather Station: Atmosphere's live monitoring web app."""
