"""The command line (typer + rich): the only package that imports them and the only one that shells out."""
