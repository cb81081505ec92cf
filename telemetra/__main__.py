from telemetra.cli import main

main()
