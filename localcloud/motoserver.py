"""`python -m localcloud.motoserver -H HOST -p PORT`: moto's server with atomic DynamoDB transactions."""

import logging

from moto.server import main

from localcloud.motopatch import apply

if __name__ == "__main__":
    apply()
    # One log line per request cost an eighth of the server's time under load; warnings and errors stay.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    main()
