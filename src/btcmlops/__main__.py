from btcmlops.cli.app import main

main()
