"""Herald: turns a newsroom's feeds into posts on X and Facebook Pages."""

__version__ = "0.1.0"
