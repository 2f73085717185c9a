import os

# Opt in to timedelta durations now (python-telegram-bot deprecates the int form).
os.environ.setdefault("PTB_TIMEDELTA", "1")
