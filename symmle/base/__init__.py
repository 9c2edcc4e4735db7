"""What every stage uses: errors, time budgets, the one lambdify door, quadrature, file and
terminal safety, and the numerical runtime that generated modules embed.
"""
