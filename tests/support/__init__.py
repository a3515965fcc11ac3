"""Helpers the tests share: imported by test modules (and benchmarks), never a test module itself."""
