"""Tests of the collect stage: store, campaigns, scheduling, export, REST API."""
