from mlee.cli import main

main()
