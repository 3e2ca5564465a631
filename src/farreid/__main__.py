from farreid.cli import main

main()
