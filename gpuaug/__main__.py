from gpuaug.cli import main

main()
