from staffer.cli import main

main()
