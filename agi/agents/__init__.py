"""Agents in the loop (seed 004): the web console and the originator meet here, in the database.

- roster.py  -- who is an agent: phone (Asterisk interface), campaigns, dialer; the console's
                request (ready / paused / logged out) and the state the originator applied
- desk.py    -- the contacts in front of an agent (``agent_calls``): preview offers, queue calls,
                after-call work, the agent's disposition (first wins, phone or console)
- board.py   -- the supervisor board's figures (one function the live-stats module can replace)

The console writes requests and clicks; the originator acts on them over AMI each tick and writes
what Asterisk did (AgentConnect, the preview call's result). Every write is guarded so that a
repeated or late one changes nothing.
"""
