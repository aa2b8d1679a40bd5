from __future__ import annotations

import uuid

from elasticsearch import AsyncElasticsearch

from ecomctl.config import Settings


async def test_document_indexed_and_found_by_full_text(settings: Settings) -> None:
    index = f"it-products-{uuid.uuid4().hex}"
    client = AsyncElasticsearch(settings.elasticsearch_url)
    try:
        await client.indices.create(
            index=index,
            settings={"number_of_shards": 1, "number_of_replicas": 0},
            mappings={
                "properties": {
                    "name": {"type": "text"},
                    "description": {"type": "text"},
                    "category": {"type": "keyword"},
                    "price": {"type": "double"},
                }
            },
        )
        await client.index(
            index=index, id="1",
            document={"name": "Espresso grinder", "description": "Burr grinder for coffee",
                      "category": "kitchen", "price": 129.0},
        )
        await client.index(
            index=index, id="2",
            document={"name": "Trail shoes", "description": "Light running shoes",
                      "category": "sports", "price": 89.0},
            refresh=True,
        )
        found = await client.search(
            index=index,
            query={"multi_match": {"query": "coffee grinder",
                                   "fields": ["name^3", "description", "category"]}},
        )
        hits = found["hits"]["hits"]
        assert [hit["_id"] for hit in hits] == ["1"]
        filtered = await client.search(
            index=index,
            query={"bool": {"must": {"match": {"description": "shoes"}},
                            "filter": {"term": {"category": "kitchen"}}}},
        )
        assert filtered["hits"]["total"]["value"] == 0
    finally:
        await client.indices.delete(index=index, ignore_unavailable=True)
        await client.close()
