"""`python -m localcloud.motoserver -H HOST -p PORT`: moto's server with atomic DynamoDB transactions."""

from moto.server import main

from localcloud.motopatch import apply

if __name__ == "__main__":
    apply()
    main()
