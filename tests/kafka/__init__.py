"""Tests of the Kafka part: embedded broker, relay, ingest consumer, dead letters."""

import warnings

# kafka-python 3.0.12 loads its protocol schemas with a deprecated importlib
# call, about 200 warnings at import; import it once here without them.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
    import kafka  # noqa: F401
