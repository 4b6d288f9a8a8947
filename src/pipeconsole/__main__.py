from pipeconsole.cli import main

main()
