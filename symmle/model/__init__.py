"""What the user declares: the safe expression parser, the Model (the one symbol table),
spec files and the catalogue.
"""
