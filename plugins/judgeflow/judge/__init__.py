"""What is sent to the judge (:mod:`.prompt`) and how its reply becomes a verdict (:mod:`.verdict`)."""
