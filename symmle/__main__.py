from symmle.cli import main

main()
