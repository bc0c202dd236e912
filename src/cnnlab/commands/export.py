"""placeholder"""
NAME = "export"

def add_parser(subparsers):
    pass
