"""Broker sources: each turns a broker's messages into pipeline submissions and acks after the commit."""
