"""placeholder"""
NAME = "predict"

def add_parser(subparsers):
    pass
