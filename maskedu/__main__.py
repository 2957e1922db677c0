from maskedu.cli import main

raise SystemExit(main())
