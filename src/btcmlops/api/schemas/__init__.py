"""Response (and request) shapes of the HTTP API, one module per router.

Field names are those of the first release's API, kept for its clients; fields are only
added. Every route declares one of these as its ``response_model``, so ``/docs`` documents
every answer.
"""

from btcmlops.api.schemas.common import ErrorResponse, FeatureSetName, ModelTypeName

__all__ = ["ErrorResponse", "FeatureSetName", "ModelTypeName"]
