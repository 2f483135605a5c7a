"""Outbound calling platform on Asterisk: FastAGI server, AMI originator, pacing, reports."""

__version__ = "0.1.0"
