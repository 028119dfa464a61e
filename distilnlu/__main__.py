from distilnlu.cli import main

main()
