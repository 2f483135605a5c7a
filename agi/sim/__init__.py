"""A simulated Asterisk 22 for the demo, the tests and benchmarks: it speaks the exact AMI and AGI wire
formats of tests/traces/ and runs dialplan/dialer.conf itself (dialer.conf here links to it).

- simulator: the Simulator (state, AMI actions); ami_server: the AMI protocol; faults: fault hooks
- originate, local_call: one Originate (a trunk channel, a Local pair); switch: channels applications ask for
- channels, line, clock, record: channels and their events, the AGI side's view of one, time, the call record
- dialplan, expressions, pbx: the dialplan file read, ${...}/$[...], the pbx loop and its applications
- agi_client, agi_session, agi_commands, agi_apps, agi_functions, sounds: AGI() and the FastAGI session
- queues, queue_model, queue_call, queue_legs, queue_bridge, queue_wrapup: app_queue's Queue() and agents
- scenario, scenarios, callee: what the network and the person do, which number gets which
"""
