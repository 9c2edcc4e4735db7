"""What the user declares: the safe expression parser, the Model records (the one symbol table)
and their domains, building models from spec files and the inline form, the numerical density
checks, and the catalogue.
"""
