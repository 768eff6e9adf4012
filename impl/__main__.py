from ocireg.launch import main

raise SystemExit(main())
