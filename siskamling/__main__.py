from siskamling.cli import main

main()
