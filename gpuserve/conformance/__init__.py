"""`gpuserve test`: the same inputs sent to every target's platform runtime, each answer held to the in-process one.

inputs      what to send: a file's inputs, or valid, boundary and invalid ones made from the input schema
venvs       a cached virtualenv per target, under gpuserve's cache directory, never the user's environment
runners     one per target: start the built directory with the platform's own local runtime and call it
processes   starting and stopping those runtimes on loopback; client, the HTTP client that calls them
reference   the in-process answers (ModelHost), which every target must give
compare     how an answer differs: outputs as JSON (data: URIs by their bytes), refusals by kind
known       the differences a platform makes by design, checked before they are excused
session     one run: build, install, start, call and compare, target by target
report      the tables (rich)
"""
