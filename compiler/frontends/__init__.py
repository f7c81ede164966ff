"""Frontends: import models written by other frameworks into nn IR + a WeightStore."""
