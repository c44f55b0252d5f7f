from neuralsight.cli import main

main()
