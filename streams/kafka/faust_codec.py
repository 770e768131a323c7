"""Our Avro codec plugged into Faust's codec registry, one codec name per topic."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from streams.kafka.codec import AvroCodec, TopicCodecs
from streams.topics import Topic


class FaustAvroCodec(codecs.Codec):
    """Delegates to `streams.kafka.codec.AvroCodec`; Faust calls `_dumps`/`_loads`."""

    def __init__(self, codec: AvroCodec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.codec = codec

    def _dumps(self, obj: Any) -> bytes:
        return self.codec.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return self.codec.decode(s)


def codec_name(topic: Topic) -> str:
    return f"wedsync-avro:{topic.name}"


def register_codec(codecs_: TopicCodecs, topic: Topic) -> str:
    """Register the codec for `topic` with Faust (idempotent); returns its name."""
    name = codec_name(topic)
    codecs.register(name, FaustAvroCodec(codecs_[topic]))
    return name
