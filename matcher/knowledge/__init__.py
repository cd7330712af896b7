"""Domain knowledge: the chain catalogue, regions, aiding pairs, geography, gap diagnosis and product->link mapping."""
