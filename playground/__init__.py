"""The playground (SPEC §17): Gridhorn without Telegram."""
