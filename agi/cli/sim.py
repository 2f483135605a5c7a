"""``dialer sim``: run the Asterisk simulator (AMI server + simulated network + FastAGI client)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from agi.sim.queues import QueueConfig
from agi.sim.scenarios import PLAN_FORMAT, ScenarioPlan
from agi.sim.simulator import Simulator

HELP = """Run a simulated Asterisk until Ctrl-C: an AMI server the originator logs in to, a
simulated network that answers, rings, is busy... per dialed number, the project's dialplan
(fax detection, AMD, FastAGI to --agi), agents in queues, and a record of every call.

\b
The number dialed is taken from the Originate Channel: PJSIP/+15551234567@trunk -> +15551234567,
Local/busy@callee -> busy. What happens to it comes from the scenario plan (--plan FILE, else a
seeded random mix, --seed).

\b
""" + PLAN_FORMAT.replace("\n\n", "\n\b\n") + """
\b
Time: --speed K divides every simulated duration (ring, AMD, prompts, talk, after-call work) by K;
event timestamps run K times faster than the wall clock so they stay consistent.

\b
Fault hooks (for manual fault tests; tests use Simulator.faults):
  --refuse-logins         every Login gets "Authentication failed" after ~1 s, then a close
  --agi-connect-delay S   wait S simulated seconds before each FastAGI connection
  --agi-never-connect     never connect to the FastAGI server (AGISTATUS=FAILURE after 2 s)
  --agi-close-on TEXT     close the FastAGI socket mid-command on a command starting with TEXT ("*": any)
  --response-first SHARE  a share (0..1) of failed calls gets its OriginateResponse BEFORE its own
                          Newchannel/Hangup, as a loaded Asterisk sends them; which calls is drawn
                          from --seed, per number and dial (the plan's [faults] table can set it too)
  kill -USR1 <pid>        drop every AMI connection now
  kill -USR2 <pid>        send a malformed line to every AMI session
  kill -HUP <pid>         stall AMI output for 10 s (nothing is lost)
"""


def register(main: click.Group) -> None:
    @main.command("sim", help=HELP)
    @click.option("--ami-host", default="127.0.0.1", show_default=True, help="AMI listen address.")
    @click.option("--ami-port", default=5038, show_default=True, type=int, help="AMI port (0: any free port).")
    @click.option("--ami-user", default="dialer", show_default=True, help="AMI username accepted.")
    @click.option("--ami-secret", default="secret", show_default=True, help="AMI secret accepted.")
    @click.option("--ami-read", default="all", show_default=True, metavar="CLASSES",
                  help="The AMI user's read classes (manager.conf read=), e.g. system,call,agent: "
                       "events of other classes are not sent.")
    @click.option("--agi", "agi", default="127.0.0.1:4573", show_default=True, metavar="HOST:PORT",
                  help="FastAGI server the dialplan connects to (${DIALER_AGI}).")
    @click.option("--speed", default=1.0, show_default=True, type=float, help="Time scale K (durations / K).")
    @click.option("--plan", "plan_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Scenario plan file: .toml, .json, or plain text (any other name); formats above.")
    @click.option("--seed", default=1, show_default=True, type=int, help="Seed of the default random mix.")
    @click.option("--agents", "agents", multiple=True, metavar="QUEUE=N",
                  help="N simulated agents logged in to QUEUE (repeatable), e.g. --agents sales=5.")
    @click.option("--record", "record_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the call record as JSON lines here on exit.")
    @click.option("--refuse-logins", is_flag=True, help="Fault: refuse every AMI login.")
    @click.option("--agi-connect-delay", type=float, default=0.0, help="Fault: delay FastAGI connections (s).")
    @click.option("--agi-never-connect", is_flag=True, help="Fault: never connect to the FastAGI server.")
    @click.option("--agi-close-on", default=None, metavar="TEXT", help="Fault: close the AGI socket on TEXT.")
    @click.option("--response-first", type=click.FloatRange(0.0, 1.0), default=None, metavar="SHARE",
                  help="Order: this share (0..1) of failed calls gets its OriginateResponse before "
                       "its channel events.")
    def sim_command(ami_host: str, ami_port: int, ami_user: str, ami_secret: str, ami_read: str, agi: str,
                    speed: float, plan_path: Path | None, seed: int, agents: tuple[str, ...],
                    record_path: Path | None, refuse_logins: bool, agi_connect_delay: float,
                    agi_never_connect: bool, agi_close_on: str | None, response_first: float | None) -> None:
        host, _, port_s = agi.rpartition(":")
        if not host or not port_s.isdigit():
            raise click.BadParameter(f"{agi!r}: expected HOST:PORT, e.g. 127.0.0.1:4573", param_hint="--agi")
        if speed <= 0:
            raise click.BadParameter("must be > 0", param_hint="--speed")
        try:
            plan = ScenarioPlan.load(plan_path) if plan_path else ScenarioPlan.mix(seed=seed)
        except (ValueError, LookupError) as e:
            raise click.BadParameter(str(e), param_hint="--plan") from None
        queues = {}
        for spec in agents:
            name, _, n = spec.partition("=")
            if not name or not n.isdigit():
                raise click.BadParameter(f"{spec!r}: expected QUEUE=N, e.g. sales=5", param_hint="--agents")
            queues[name] = QueueConfig(name, agents=int(n))
        sim = Simulator(agi_host=host, agi_port=int(port_s), speed=speed, plan=plan, queues=queues,
                        ami_host=ami_host, ami_port=ami_port, ami_user=ami_user, ami_secret=ami_secret,
                        ami_read=ami_read)
        if response_first is not None:
            sim.faults.response_first = response_first
            sim.faults.response_first_seed = seed
        sim.faults.refuse_logins = refuse_logins
        sim.faults.agi_connect_delay = agi_connect_delay
        sim.faults.agi_never_connect = agi_never_connect
        sim.faults.agi_close_on = agi_close_on

        async def run() -> None:
            await sim.start()
            click.echo(f"simulated Asterisk: AMI {ami_host}:{sim.ami_port} (user {ami_user}), "
                       f"FastAGI -> {host}:{port_s}, speed x{speed:g}; Ctrl-C to stop", err=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGUSR1, sim.faults.drop_ami)
            loop.add_signal_handler(signal.SIGUSR2, sim.faults.send_malformed)
            loop.add_signal_handler(signal.SIGHUP, lambda: sim.faults.stall_ami(10.0))
            await stop.wait()
            await sim.stop()
            rec = sim.record
            click.echo(f"{len(rec)} calls, max concurrent {rec.max_concurrent}, max {rec.max_cps} originates/s",
                       err=True)
            if record_path:
                rec.to_jsonl(record_path)
                click.echo(f"record written to {record_path}", err=True)

        asyncio.run(run())
